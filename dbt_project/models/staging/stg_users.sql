-- One row per road user (raw.users), with the target: severity as an ordered class beside
-- the raw `grav`. The files give users no identifier: road_user_id numbers the users of
-- one vehicle in a fixed order of their columns, so it is stable from run to run.
with source as (
    select * from {{ source('raw', 'users') }}
),

renamed as (
    select
        Num_Acc as num_acc,
        num_veh as vehicle_id,
        nullif(place, 0) as seat_position_code,
        catu as user_category_code,
        grav,
        {{ severity_from_grav('grav') }} as severity,
        sexe as sex_code,
        nullif(trajet, 0) as trip_purpose_code,
        secu as secu_raw,
        {{ safety_equipment_from_secu('secu') }} as safety_equipment_code,
        {{ safety_equipment_use_from_secu('secu') }} as safety_equipment_use_code,
        -- 0 is "not applicable" for drivers and passengers, "not recorded" for a pedestrian.
        case when not (catu in (3, 4) and locp = 0) then locp end as pedestrian_location_code,
        case when not (catu in (3, 4) and actp = 0) then actp end as pedestrian_action_code,
        case when not (catu in (3, 4) and etatp = 0) then etatp end as pedestrian_company_code,
        an_nais as birth_year,
        {{ accident_year_from_num_acc('Num_Acc') }} as accident_year
    from source
),

numbered as (
    select
        *,
        row_number() over (
            partition by num_acc, vehicle_id
            order by
                seat_position_code nulls last, user_category_code, sex_code, birth_year,
                grav, trip_purpose_code, secu_raw, pedestrian_location_code,
                pedestrian_action_code, pedestrian_company_code
        ) as user_number_in_vehicle,
        -- Age at the accident, to within a year (only birth years are recorded).
        case
            when accident_year - birth_year between 0 and 120 then accident_year - birth_year
        end as age
    from renamed
)

select
    num_acc || '-' || vehicle_id || '-' || user_number_in_vehicle as road_user_id,
    *
from numbered

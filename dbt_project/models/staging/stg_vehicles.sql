-- One row per vehicle (raw.vehicles), keyed by accident and vehicle id (A01, B02, ...).
with source as (
    select * from {{ source('raw', 'vehicles') }}
),

renamed as (
    select
        Num_Acc as num_acc,
        num_veh as vehicle_id,
        nullif(senc, 0) as direction_code,
        catv as vehicle_category_code,
        nullif(occutc, 0) as public_transport_occupants,
        -- 0 is "none" here, not "not recorded": the code stays.
        obs as fixed_obstacle_code,
        obsm as mobile_obstacle_code,
        nullif(choc, 0) as impact_point_code,
        nullif(manv, 0) as manoeuvre_code
    from source
)

select * from renamed

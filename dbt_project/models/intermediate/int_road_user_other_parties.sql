-- The other parties of each road user's accident: the heaviest other vehicle (its mass
-- class, seed vehicle_mass_classes) and how many pedestrians were involved.
-- BAAC records a pedestrian with the vehicle that hit them (`num_veh`): that vehicle is the
-- party that hurt them, so for a pedestrian every vehicle of the accident is "other". For
-- a driver or passenger, their own vehicle is not another party.
with users as (
    select
        road_user_id,
        num_acc,
        vehicle_id,
        user_category_code in (3, 4) as is_pedestrian
    from {{ ref('stg_users') }}
),

vehicles as (
    select
        num_acc,
        vehicle_id,
        vehicle_category_code
    from {{ ref('stg_vehicles') }}
),

mass_classes as (
    select * from {{ ref('vehicle_mass_classes') }}
),

vehicle_masses as (
    select
        vehicles.num_acc,
        vehicles.vehicle_id,
        -- A category the seed does not know (a new code: accepted_codes warns) counts as
        -- "other vehicle", catv 99.
        coalesce(
            mass_classes.mass_class_code,
            (
                select other.mass_class_code
                from mass_classes as other
                where other.vehicle_category_code = 99
            )
        ) as mass_class_code
    from vehicles
    left join mass_classes on vehicles.vehicle_category_code = mass_classes.vehicle_category_code
),

heaviest_other_vehicles as (
    -- An inner join on the accident with the "other vehicle" rule as a filter, not a left
    -- join with the rule in its condition: DuckDB runs a join whose condition holds an OR
    -- as a nested loop over every pair of road user and vehicle, which did not finish in
    -- 12 minutes at national size (1.95 M x 1.42 M). Road users without another vehicle
    -- come back with the left join below.
    select
        users.road_user_id,
        -- Mass-class codes are ordered by mass: the largest is the heaviest.
        max(vehicle_masses.mass_class_code) as heaviest_other_vehicle_code
    from users
    inner join vehicle_masses on users.num_acc = vehicle_masses.num_acc
    where users.is_pedestrian or users.vehicle_id != vehicle_masses.vehicle_id
    group by users.road_user_id
),

pedestrian_counts as (
    select
        num_acc,
        cast(count(*) filter (where is_pedestrian) as integer) as pedestrians_in_accident
    from users
    group by num_acc
)

select
    users.road_user_id,
    users.num_acc,
    -- 0: no other vehicle.
    coalesce(heaviest_other_vehicles.heaviest_other_vehicle_code, 0) as heaviest_other_vehicle_code,
    pedestrian_counts.pedestrians_in_accident
from users
left join heaviest_other_vehicles on users.road_user_id = heaviest_other_vehicles.road_user_id
inner join pedestrian_counts on users.num_acc = pedestrian_counts.num_acc
